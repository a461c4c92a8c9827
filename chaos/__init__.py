"""The fault suite of `make chaos`: the mesh under load while its parts fail, then checked."""
