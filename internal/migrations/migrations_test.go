package migrations

import (
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	file := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    string // versions and names in order
		wantErr string
	}{
		{"ordered by number, not by name", fstest.MapFS{"0010_c.sql": file("c"), "0002_b.sql": file("b"), "1_a.sql": file("a"), "notes.txt": file("x")},
			"1 1_a.sql a,2 0002_b.sql b,10 0010_c.sql c", ""},
		{"none", fstest.MapFS{}, "", ""},
		{"no number", fstest.MapFS{"init.sql": file("")}, "", "must be NNNN_description.sql"},
		{"not a number", fstest.MapFS{"x1_init.sql": file("")}, "", "must start with a positive number"},
		{"zero", fstest.MapFS{"0000_init.sql": file("")}, "", "must start with a positive number"},
		{"same number twice", fstest.MapFS{"0001_a.sql": file(""), "1_b.sql": file("")}, "", "share version 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Load(tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, strings.Join([]string{strconv.Itoa(m.Version), m.Name, m.SQL}, " "))
			}
			if strings.Join(got, ",") != tt.want {
				t.Fatalf("Load = %q, want %q", strings.Join(got, ","), tt.want)
			}
		})
	}
}

func TestVersionTakesAFolder(t *testing.T) {
	if v, err := Version("migrations/0004_consumed_actions.sql"); err != nil || v != 4 {
		t.Fatalf("Version = %d, %v; want 4", v, err)
	}
}
