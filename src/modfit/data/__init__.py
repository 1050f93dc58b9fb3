from modfit.data.example import Example, Splits, stratified_sample, subsample
from modfit.data.loaders import data_root, dataset_dir, load_dataset, read_examples

__all__ = ["Example", "Splits", "data_root", "dataset_dir", "load_dataset", "read_examples",
           "stratified_sample", "subsample"]
