"""CUBE (Cui et al. 2022, as in OpenBackdoor's `CUBEDefender`): poisoned rows form their own cluster.

Train on the poisoned set, embed every training row with the trained model, reduce the embeddings
(UMAP when `umap-learn` is installed, else PCA), and cluster them (HDBSCAN from scikit-learn, or
DBSCAN on an older scikit-learn). Within each label, the largest cluster is kept and every other
cluster (HDBSCAN's noise counts as one) smaller than half the label's rows is dropped; then the
model is trained again on the rest. A row's suspicion score is one minus its cluster's share of the
label's rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from modfit.baselines.base import Context, procedure
from modfit.baselines.filtering import RowVerdict, filter_and_retrain
from modfit.baselines.scoring import encode_texts, features
from modfit.errors import ModfitError, require
from modfit.result import RunResult


@dataclass(frozen=True)
class CubeOptions:
    reducer: str = "auto"  # auto (UMAP when installed, else PCA), umap or pca
    dimensions: int = 10
    min_cluster_size: int = 0  # 0: max(5, one in 200 training rows)
    batch_size: int = 128

    def validate(self) -> None:
        require(
            self.reducer in ("auto", "umap", "pca"), f"cube reducer {self.reducer!r}: use auto, umap or pca"
        )
        require(self.dimensions >= 1, f"cube dimensions {self.dimensions}: use at least 1")
        require(self.min_cluster_size >= 0, f"cube min_cluster_size {self.min_cluster_size}: use >= 0")


def _umap_available() -> bool:
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def reducer_name(options: CubeOptions) -> str:
    return "umap" if options.reducer == "umap" or (options.reducer == "auto" and _umap_available()) else "pca"


def reduce(vectors: torch.Tensor, reducer: str, dimensions: int, seed: int) -> torch.Tensor:
    """The embeddings in at most `dimensions` dimensions."""
    dimensions = min(dimensions, vectors.shape[1], max(1, vectors.shape[0] - 2))
    if reducer == "umap":
        import umap

        model = umap.UMAP(n_components=dimensions, min_dist=0.0, random_state=seed)
        return torch.as_tensor(model.fit_transform(vectors.numpy()))
    centred = vectors - vectors.mean(0)
    _, _, basis = torch.linalg.svd(centred, full_matrices=False)  # exact PCA: no randomness to seed
    return centred @ basis[:dimensions].T


def _sklearn_cluster():
    try:
        from sklearn import cluster
    except ImportError:
        raise ModfitError("cube needs scikit-learn for clustering: pip install 'modfit[maps]'") from None
    return cluster


def clusterer_name() -> str:
    return "hdbscan" if hasattr(_sklearn_cluster(), "HDBSCAN") else "dbscan"


def cluster(points: torch.Tensor, min_size: int, clusterer: str) -> list[int]:
    """Cluster ids per point (-1: noise)."""
    sk, array = _sklearn_cluster(), points.numpy()
    if clusterer == "hdbscan":
        return sk.HDBSCAN(min_cluster_size=min_size, copy=True).fit_predict(array).tolist()
    from sklearn.neighbors import NearestNeighbors

    # DBSCAN needs a radius: the median distance to each point's min_size-th neighbour.
    distances, _ = NearestNeighbors(n_neighbors=min(min_size, len(array))).fit(array).kneighbors(array)
    eps = float(sorted(distances[:, -1])[len(array) // 2]) or 1e-6
    return sk.DBSCAN(eps=eps, min_samples=min_size).fit_predict(array).tolist()


def minority_clusters(clusters: list[int], labels: list[int]) -> RowVerdict:
    """Per label keep the largest cluster; drop the others smaller than half the label's rows."""
    per_label = Counter(labels)
    sizes = Counter(zip(labels, clusters, strict=True))
    largest = {
        y: max((c for (label, c) in sizes if label == y), key=lambda c: sizes[y, c]) for y in per_label
    }
    flagged = [
        c != largest[y] and sizes[y, c] < per_label[y] / 2 for y, c in zip(labels, clusters, strict=True)
    ]
    scores = [1.0 - sizes[y, c] / per_label[y] for y, c in zip(labels, clusters, strict=True)]
    return RowVerdict(scores, flagged, {"clusters": len(set(clusters) - {-1})})


@procedure("cube", CubeOptions)
def cube(context: Context, options: CubeOptions) -> RunResult:
    experiment = context.experiment

    def score(result: RunResult, texts: list[str], labels: list[int]) -> RowVerdict:
        encoded = encode_texts(texts, result.tokenizer, experiment.model.max_length)
        vectors = features(result.model, encoded, options.batch_size)
        reducer, clusterer = reducer_name(options), clusterer_name()
        points = reduce(vectors, reducer, options.dimensions, experiment.seed)
        min_size = options.min_cluster_size or max(5, len(texts) // 200)
        verdict = minority_clusters(cluster(points, min_size, clusterer), labels)
        details = {**verdict.details, "reducer": reducer, "clusterer": clusterer}
        return RowVerdict(verdict.scores, verdict.flagged, details)

    return filter_and_retrain(context, score)
