"""Tests of the protobuf contracts and the code generated from them."""
