// Package depcheck holds only a test: it enforces which packages each part
// of Taquilla may link, using `go list -deps`.
package depcheck
