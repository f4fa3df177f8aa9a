package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mattn/go-sqlite3"

	"example.com/passwordless/internal/sqlitedb"
)

// synchronous is FULL (the driver's default is NORMAL) so that a committed withdrawal
// survives a power cut, not only a process crash, at the price of an fsync per commit.
const synchronous = "FULL"

// readers is the read-only pool of a database file, sized for a small server.
const readers = 8

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Open opens (creating if needed) the SQLite database at path and applies any
// pending migrations. path ":memory:" gives a private in-memory database.
// now is the clock used for timestamps (nil means time.Now).
func Open(ctx context.Context, path string, now func() time.Time, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty database path")
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open store: create folder for %s: %w", path, err)
		}
	}
	if now == nil {
		now = time.Now
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	d, err := sqlitedb.Open(ctx, sqlitedb.Options{Path: path, Synchronous: synchronous, Readers: readers, Migrations: migrations, Now: now})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return newStore(&sqliteEngine{d}, now, opts), nil
}

// IsDamaged reports whether err is SQLite finding a file that is not a database or is corrupt.
func IsDamaged(err error) bool { return sqlitedb.IsDamaged(err) }

// sqliteEngine is SQLite through internal/sqlitedb: one writing connection, whose
// transactions begin IMMEDIATE and so run one at a time, and a pool of read-only ones.
// Its queries write a bound value as +? where a statement orders or limits (sqlitedb).
type sqliteEngine struct{ d *sqlitedb.DB }

func (e *sqliteEngine) writer() *sql.DB   { return e.d.Writer }
func (e *sqliteEngine) reader() *sql.DB   { return e.d.Reader }
func (e *sqliteEngine) queries() *queries { return &sqliteQueries }
func (e *sqliteEngine) param(int) string  { return "?" }
func (e *sqliteEngine) close() error      { return e.d.Close() }
func (e *sqliteEngine) isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

// snapshot is a DEFERRED transaction on the read pool: in WAL mode its reads see the
// database as of its first read, whatever the writer commits meanwhile.
func (e *sqliteEngine) snapshot(ctx context.Context) (*sql.Tx, error) {
	return e.d.Reader.BeginTx(ctx, nil)
}

// lockLimits has nothing to do: every write transaction holds the database's one write
// lock from its BEGIN to its end, so no two count at once.
func (e *sqliteEngine) lockLimits(context.Context, *sql.Tx, []string) error { return nil }

var sqliteQueries = queries{
	insertUser:    `INSERT INTO users (id, %[1]s, created_at) VALUES (?, ?, ?) ON CONFLICT(%[1]s) DO NOTHING`,
	insertAccount: `INSERT INTO accounts (user_id, balance_cents) VALUES (?, ?)`,
	userBy:        `SELECT ` + userColumns + ` FROM users WHERE %s = ?`,
	touchSignIn:   `UPDATE users SET last_sign_in_at = ?, last_sign_in_method = ? WHERE id = ?`,
	balance:       `SELECT balance_cents FROM accounts WHERE user_id = ?`,
	consumeAction: `INSERT INTO consumed_actions (action_code, idempotency_key, consumed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
	setAddress:    `UPDATE users SET %s = ? WHERE id = ?`,
	clearAddress:  `UPDATE users SET %s = NULL WHERE id = ? AND %s IS NOT NULL`,

	insertSession: `INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?)`,
	getSession:    `SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = ?`,
	revokeSession: `UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
	sessionExists: `SELECT 1 FROM sessions WHERE id = ?`,

	insertPending: `INSERT INTO pending_signins (id, challenge_id, method, recipient, wrong_attempts, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
	getPending: `SELECT id, challenge_id, method, recipient, wrong_attempts, created_at, expires_at
		FROM pending_signins WHERE id = ?`,
	updatePending: `UPDATE pending_signins SET challenge_id = ?, expires_at = ?, wrong_attempts = 0 WHERE id = ?`,
	wrongAttempt:  `UPDATE pending_signins SET wrong_attempts = wrong_attempts + 1 WHERE id = ? RETURNING wrong_attempts`,
	deletePending: `DELETE FROM pending_signins WHERE id = ?`,

	insertWithdrawal: `INSERT INTO withdrawals (id, user_id, amount_cents, state, authsignal_state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
	awaitChallenge: `UPDATE withdrawals SET state = ?, challenge_url = ?, authsignal_state = ?, updated_at = ?
		WHERE id = ? AND user_id = ? AND state = ?`,
	getWithdrawal: `SELECT ` + withdrawalColumns + ` FROM withdrawals WHERE id = ?`,
	// rowid breaks ties of created_at: the order of insertion.
	listWithdrawals: `SELECT ` + withdrawalColumns + ` FROM withdrawals WHERE user_id = +? ORDER BY created_at DESC, rowid DESC`,
	settleWithdrawal: `UPDATE withdrawals SET state = ?, authsignal_state = ?, updated_at = ?
		WHERE id = ? AND user_id = ? AND state IN (%s) RETURNING amount_cents`,
	debit: `UPDATE accounts SET balance_cents = balance_cents - ?1 WHERE user_id = ?2 AND balance_cents >= ?1`,
	staleWithdrawals: `SELECT ` + withdrawalColumns + ` FROM withdrawals
		WHERE (state = +? AND updated_at < +?) OR (state = +? AND updated_at < +?)
		ORDER BY updated_at LIMIT +?`,

	expireLimit:  `DELETE FROM limit_events WHERE key = ? AND expires_at <= ?`,
	countLimit:   `SELECT COUNT(*) FROM limit_events WHERE key = ? AND expires_at > ?`,
	tagSeen:      `SELECT COUNT(*) FROM limit_events WHERE key = ? AND tag = ? AND expires_at > ?`,
	insertLimit:  `INSERT INTO limit_events (key, id, tag, expires_at) VALUES (?, ?, ?, ?)`,
	releaseLimit: `DELETE FROM limit_events WHERE key = ? AND id = ?`,
	lockedUntil: `SELECT expires_at FROM limit_events WHERE key = +? AND expires_at > +?
		ORDER BY expires_at DESC LIMIT 1 OFFSET +?`,
	sweepLimits: `DELETE FROM limit_events WHERE expires_at <= ?`,
}
