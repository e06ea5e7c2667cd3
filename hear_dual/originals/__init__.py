"""HEAR 2021 modules that wrap other projects' original code, for comparing hear-dual's ports against them: each
runs the other project's own network definition and published weights, unchanged, behind the HEAR 2021 API, so
that `hear-dual compare hear_dual.originals.<name> hear_dual.torch_impl` checks a port against the code it was
ported from."""
