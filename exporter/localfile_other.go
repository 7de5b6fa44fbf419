//go:build !linux

package exporter

// serveLocalFiles serves no local file socket: a plugin could not open the
// file through /proc, so local clients stream their images here.
func (e *Exporter) serveLocalFiles(string) (stop func()) { return nil }
