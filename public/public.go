// Package public holds the app's static assets, embedded so the binary is self-contained.
package public

import "embed"

// Files is served under /static.
//
//go:embed *.css *.js *.svg vendor
var Files embed.FS
