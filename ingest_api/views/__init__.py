"""HTTP views of the front: writes (``writes``) and operations (``operations``)."""
