"""Running a model where it cannot really run: values followed on meta, meta kernels PyTorch lacks, CUDA's
autocast on other devices, and the op schema facts these need. Counting and memory tracking build on it."""
