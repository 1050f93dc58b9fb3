"""`safe`'s scanners (docs/defences/safe.md): one file each, registered in `base.SCANNERS` on import."""

from modfit.baselines.scanners import finetune, finetune_scaled, probe, self_fit  # noqa: F401  (registration)
from modfit.baselines.scanners.base import SCANNERS, Scan, ScannerSettings, auto_scanner

__all__ = ["SCANNERS", "Scan", "ScannerSettings", "auto_scanner"]
