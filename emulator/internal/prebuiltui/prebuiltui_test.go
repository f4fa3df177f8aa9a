package prebuiltui

import "testing"

func TestWithToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://app.example/cb", "https://app.example/cb?token=T"},
		{"https://app.example/cb?a=1", "https://app.example/cb?a=1&token=T"},
		{"https://app.example/cb?a=1&b=x%20y#frag", "https://app.example/cb?a=1&b=x%20y&token=T#frag"},
		{"https://app.example/cb?token=old&a=1", "https://app.example/cb?a=1&token=T"},
	}
	for _, tt := range tests {
		if got, err := withToken(tt.in, "T"); err != nil || got != tt.want {
			t.Errorf("withToken(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
