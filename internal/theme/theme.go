// Package theme is the stylesheet that the app's pages and the emulator's pages share:
// colours for light and dark, type, the header bar, forms, buttons, notices and tables.
package theme

import _ "embed"

// CSS is theme.css. Each server adds its own few rules in a second stylesheet.
//
//go:embed theme.css
var CSS []byte
