"""Corpora, phone sets, features and batching."""
