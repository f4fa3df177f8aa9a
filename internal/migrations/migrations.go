// Package migrations loads a folder of numbered SQL migrations, NNNN_description.sql, in
// the order they apply; each database's runner (internal/sqlitedb, the store's PostgreSQL
// engine) records and applies them its own way.
package migrations

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one file: its version (the number before the first "_"), its base name and
// its SQL.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load returns the *.sql files of files ordered by version, refusing a name without a
// positive number in front and two files with one version.
func Load(files fs.FS) ([]Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, name := range names {
		version, err := Version(name)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, version)
		}
		seen[version] = name
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: version, Name: path.Base(name), SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Version is the number a migration's file name starts with: 0001_init.sql is 1. The name
// may have a folder in front ("migrations/0001_init.sql").
func Version(name string) (int, error) {
	prefix, _, ok := strings.Cut(path.Base(name), "_")
	if !ok {
		return 0, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
	}
	version, err := strconv.Atoi(prefix)
	if err != nil || version <= 0 {
		return 0, fmt.Errorf("migration %s: name must start with a positive number", name)
	}
	return version, nil
}
