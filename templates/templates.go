// Package templates holds the app's HTML views, embedded so the binary is self-contained.
package templates

import "embed"

// Files is the folder's views: layouts/, partials/ and one file per page.
//
//go:embed *.html layouts/*.html partials/*.html
var Files embed.FS
