package exporter

// LocalFilesTaken is how many byte streams' data a plugin took as a local
// file, for tests.
func LocalFilesTaken(e *Exporter) int64 { return e.localFiles.taken.Load() }
