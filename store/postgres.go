package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"example.com/passwordless/internal/migrations"
)

//go:embed migrations_postgres/*.sql
var postgresMigrationFiles embed.FS

// postgresConns bounds the connections one instance opens; several instances share the
// server's max_connections (100 by default).
const postgresConns = 16

// migrationLock is the advisory lock (an arbitrary constant, "pwdless" in ASCII) that
// instances starting at once take before migrating, so that one migrates and the others
// then find the work done.
const migrationLock = 0x707764_6c657373

// OpenPostgres connects to the PostgreSQL database at url (postgres://user:pass@host/db)
// and applies any pending migrations. now is the clock used for timestamps (nil means
// time.Now). Errors never include the password.
//
// It goes through pgx's database/sql driver (pgx/v5/stdlib) rather than pgxpool so that
// both databases share one Store: the same transactions, scans and error handling, with
// database/sql's pool in front of pgx's connections.
func OpenPostgres(ctx context.Context, url string, now func() time.Time, opts ...Option) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err) // pgx redacts the password
	}
	if now == nil {
		now = time.Now
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(postgresConns)
	db.SetMaxIdleConns(postgresConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	where := fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: connect to %s: %w", where, err)
	}
	if err := migratePostgres(ctx, db, now); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %s: %w", where, err)
	}
	return newStore(&postgresEngine{db}, now, opts), nil
}

// migratePostgres applies the migrations not yet recorded in schema_migrations, all in one
// transaction that first takes migrationLock: DDL is transactional in PostgreSQL, so a
// failure leaves the schema as it was, and an instance starting meanwhile waits for the
// lock and then sees every migration recorded.
func migratePostgres(ctx context.Context, db *sql.DB, now func() time.Time) error {
	files, err := fs.Sub(postgresMigrationFiles, "migrations_postgres")
	if err != nil {
		return err
	}
	ms, err := migrations.Load(files)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback() // after Commit, a no-op
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: schema_migrations: %w", err)
	}
	postgres := migrations.Dialect{
		IsApplied: `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`,
		Record:    `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
	}
	for _, m := range ms {
		if err := postgres.Apply(ctx, tx, m, toDB(now())); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// postgresEngine is PostgreSQL through one database/sql pool. Writes run under READ
// COMMITTED, where a conditional UPDATE that waited for another transaction's row
// re-checks its WHERE against the row that transaction committed: that is what makes
// "WHERE state IN (…)" and "WHERE balance_cents >= amount" settle a withdrawal once and
// never overdraw, with no serialization failures to retry.
type postgresEngine struct{ db *sql.DB }

func (e *postgresEngine) writer() *sql.DB    { return e.db }
func (e *postgresEngine) reader() *sql.DB    { return e.db }
func (e *postgresEngine) queries() *queries  { return &postgresQueries }
func (e *postgresEngine) param(n int) string { return fmt.Sprintf("$%d", n) }
func (e *postgresEngine) close() error       { return e.db.Close() }
func (e *postgresEngine) isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
}

// snapshot is REPEATABLE READ: every statement in it sees the data as of its first.
func (e *postgresEngine) snapshot(ctx context.Context) (*sql.Tx, error) {
	return e.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
}

// lockLimits takes a transaction-scoped advisory lock per key, numbered by the key's first
// 8 bytes (keys are SHA-256 digests in hex), in ascending order so that two transactions
// locking overlapping keys cannot deadlock. The count that follows the lock sees every
// event its previous holder committed: READ COMMITTED takes a new snapshot per statement.
func (e *postgresEngine) lockLimits(ctx context.Context, tx *sql.Tx, keys []string) error {
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		b, err := hex.DecodeString(k[:16])
		if err != nil {
			return fmt.Errorf("lock limit key: %w", err)
		}
		ids = append(ids, int64(binary.BigEndian.Uint64(b)))
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, id); err != nil {
			return fmt.Errorf("lock limit key: %w", err)
		}
	}
	return nil
}

var postgresQueries = queries{
	insertUser:    `INSERT INTO users (id, %[1]s, created_at) VALUES ($1, $2, $3) ON CONFLICT (%[1]s) DO NOTHING`,
	insertAccount: `INSERT INTO accounts (user_id, balance_cents) VALUES ($1, $2)`,
	userBy:        `SELECT ` + userColumns + ` FROM users WHERE %s = $1`,
	touchSignIn:   `UPDATE users SET last_sign_in_at = $1, last_sign_in_method = $2 WHERE id = $3`,
	balance:       `SELECT balance_cents FROM accounts WHERE user_id = $1`,
	consumeAction: `INSERT INTO consumed_actions (action_code, idempotency_key, consumed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
	setAddress:    `UPDATE users SET %s = $1 WHERE id = $2`,
	clearAddress:  `UPDATE users SET %s = NULL WHERE id = $1 AND %s IS NOT NULL`,

	insertSession: `INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5)`,
	getSession:    `SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1`,
	revokeSession: `UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`,
	sessionExists: `SELECT 1 FROM sessions WHERE id = $1`,

	insertPending: `INSERT INTO pending_signins (id, challenge_id, method, recipient, wrong_attempts, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
	getPending: `SELECT id, challenge_id, method, recipient, wrong_attempts, created_at, expires_at
		FROM pending_signins WHERE id = $1`,
	updatePending: `UPDATE pending_signins SET challenge_id = $1, expires_at = $2, wrong_attempts = 0 WHERE id = $3`,
	wrongAttempt:  `UPDATE pending_signins SET wrong_attempts = wrong_attempts + 1 WHERE id = $1 RETURNING wrong_attempts`,
	deletePending: `DELETE FROM pending_signins WHERE id = $1`,

	insertWithdrawal: `INSERT INTO withdrawals (id, user_id, amount_cents, state, authsignal_state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
	awaitChallenge: `UPDATE withdrawals SET state = $1, challenge_url = $2, authsignal_state = $3, updated_at = $4
		WHERE id = $5 AND user_id = $6 AND state = $7`,
	getWithdrawal: `SELECT ` + withdrawalColumns + ` FROM withdrawals WHERE id = $1`,
	// seq breaks ties of created_at: the order of insertion.
	listWithdrawals: `SELECT ` + withdrawalColumns + ` FROM withdrawals WHERE user_id = $1 ORDER BY created_at DESC, seq DESC`,
	settleWithdrawal: `UPDATE withdrawals SET state = $1, authsignal_state = $2, updated_at = $3
		WHERE id = $4 AND user_id = $5 AND state IN (%s) RETURNING amount_cents`,
	debit: `UPDATE accounts SET balance_cents = balance_cents - $1 WHERE user_id = $2 AND balance_cents >= $1`,
	staleWithdrawals: `SELECT ` + withdrawalColumns + ` FROM withdrawals
		WHERE (state = $1 AND updated_at < $2) OR (state = $3 AND updated_at < $4)
		ORDER BY updated_at LIMIT $5`,

	expireLimit:  `DELETE FROM limit_events WHERE key = $1 AND expires_at <= $2`,
	countLimit:   `SELECT COUNT(*) FROM limit_events WHERE key = $1 AND expires_at > $2`,
	tagSeen:      `SELECT COUNT(*) FROM limit_events WHERE key = $1 AND tag = $2 AND expires_at > $3`,
	insertLimit:  `INSERT INTO limit_events (key, id, tag, expires_at) VALUES ($1, $2, $3, $4)`,
	releaseLimit: `DELETE FROM limit_events WHERE key = $1 AND id = $2`,
	lockedUntil: `SELECT expires_at FROM limit_events WHERE key = $1 AND expires_at > $2
		ORDER BY expires_at DESC LIMIT 1 OFFSET $3`,
	sweepLimits: `DELETE FROM limit_events WHERE expires_at <= $1`,
}
