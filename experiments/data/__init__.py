"""Datasets: the IDX reader and writer, the checksummed downloader, the shipped Fashion-MNIST subset."""
