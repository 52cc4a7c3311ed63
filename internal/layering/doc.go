// Package layering holds the check that deid's imports follow its data:
// sources, then the pipeline, then sinks. No package under sinks/ or
// transforms/ imports one under sources/, and pipeline imports nothing
// under sources/, transforms/ or sinks/ — directly or through another of
// deid's packages, in its code or its tests. Only cmd/deid wires them
// together. The check is the package's test; the package has no code.
package layering
