"""Representation maps: 2-D projections of sentence representations at a few training checkpoints.

t-SNE (scikit-learn, when installed) separates clusters more clearly; PCA, written here with numpy's
SVD, needs nothing extra and is the fallback. Each checkpoint is projected on its own.
"""

from __future__ import annotations

from modfit.errors import ModfitError
from modfit.report.figure import subplots, to_png
from modfit.representations import RepresentationSnapshot

PROJECTIONS = ("auto", "pca", "tsne")


def choose_projection(name: str) -> str:
    """`auto` is t-SNE when scikit-learn is installed, else PCA."""
    if name not in PROJECTIONS:
        raise ModfitError(f"projection {name!r}: use auto, pca or tsne")
    if name == "pca":
        return "pca"
    try:
        import sklearn  # noqa: F401
    except ImportError:
        if name == "tsne":
            raise ModfitError("projection tsne needs scikit-learn: pip install 'modfit[maps]'") from None
        return "pca"
    return "tsne"


def project(vectors, method: str, seed: int = 0):
    """rows × 2 coordinates (numpy) of the rows × dim `vectors`."""
    import numpy

    vectors = numpy.asarray(vectors, dtype="float64")
    if method == "tsne" and len(vectors) > 4:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        perplexity = min(30.0, (len(vectors) - 1) / 3)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        # One thread: a few hundred points take a second, while OpenMP threads contending for busy
        # cores made the same projection 40x slower (measured on a shared 2-core machine).
        with threadpool_limits(limits=1):
            return tsne.fit_transform(vectors)
    centred = vectors - vectors.mean(axis=0)
    _, _, components = numpy.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:2].T
    if projected.shape[1] < 2:
        projected = numpy.hstack([projected, numpy.zeros((len(projected), 2 - projected.shape[1]))])
    return projected


def plot_representation_map(snapshots: list[RepresentationSnapshot], method: str, title: str = "",
                            seed: int = 0) -> bytes:  # fmt: skip
    """PNG bytes: one panel per checkpoint; clean rows coloured by label, poisoned rows as black crosses."""
    figure, axes = subplots(len(snapshots), width=4 * len(snapshots), squeeze=False)
    for axis, snapshot in zip(axes[0], snapshots, strict=True):
        points = project(snapshot.vectors, method, seed)
        for label in sorted(set(snapshot.labels)):
            chosen = [i for i, (y, p) in enumerate(zip(snapshot.labels, snapshot.poisoned, strict=True))
                      if y == label and not p]  # fmt: skip
            axis.scatter(points[chosen, 0], points[chosen, 1], s=10, alpha=0.7, color=f"C{label}",
                         label=f"clean, label {label}")  # fmt: skip
        poisoned = [i for i, p in enumerate(snapshot.poisoned) if p]
        if poisoned:
            axis.scatter(points[poisoned, 0], points[poisoned, 1], s=18, marker="x", color="black",
                         label="poisoned")  # fmt: skip
        axis.set_title(f"step {snapshot.step}", fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0][0].legend(fontsize=7)
    return to_png(figure, f"{title} ({'t-SNE' if method == 'tsne' else 'PCA'})" if title else method, dpi=100)
