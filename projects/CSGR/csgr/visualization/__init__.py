"""Pictures: CSGR attention maps (teacher vs student), training curves, and the demo of a released
student. Submodules are imported on use (``csgr.visualization.attention``, ``.curves``, ``.demo``)
so that plotting curves does not build models and vice versa."""
