package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"example.com/passwordless/emulator/internal/vocab"
)

// Device is a device id a user's actions were tracked with.
type Device struct {
	UserID, DeviceID       string
	CreatedAt              time.Time
	AuthenticatedAt        time.Time // zero: no challenge succeeded on it yet
	LastVerificationMethod vocab.Method
	InvalidatedAt          time.Time // zero: not invalidated
	RememberedUntil        time.Time // zero: not remembered
}

const deviceColumns = `user_id, device_id, first_seen_at, authenticated_at, last_verification_method, invalidated_at, remembered_until`

func scanDevice(row interface{ Scan(...any) error }) (Device, error) {
	var d Device
	var created int64
	var authenticated, invalidated, remembered sql.NullInt64
	if err := row.Scan(&d.UserID, &d.DeviceID, &created, &authenticated, &d.LastVerificationMethod, &invalidated, &remembered); err != nil {
		return d, fmt.Errorf("scan device: %w", err)
	}
	d.CreatedAt, d.AuthenticatedAt, d.InvalidatedAt, d.RememberedUntil = fromMS(created), nullTime(authenticated), nullTime(invalidated), nullTime(remembered)
	return d, nil
}

// Devices returns a user's devices, oldest first.
func (s *Store) Devices(ctx context.Context, userID string) ([]Device, error) {
	ds, err := queryAll(ctx, s.db, func(rows *sql.Rows) (Device, error) { return scanDevice(rows) },
		`SELECT `+deviceColumns+` FROM seen_devices WHERE user_id = +? ORDER BY first_seen_at, device_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return ds, nil
}

// changeDevice runs one UPDATE of a user's device and returns the device after it.
func (s *Store) changeDevice(ctx context.Context, userID, deviceID, set string, args ...any) (Device, error) {
	var d Device
	err := s.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE seen_devices SET `+set+` WHERE user_id = ? AND device_id = ?`, append(args, userID, deviceID)...)
		if err != nil {
			return fmt.Errorf("update device: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return refuse(NotFound, "Device %q of user %q was not found.", deviceID, userID)
		}
		d, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM seen_devices WHERE user_id = ? AND device_id = ?`, userID, deviceID))
		return err
	})
	return d, err
}

// RememberDevice sets until when a device is remembered; a zero until forgets it.
func (s *Store) RememberDevice(ctx context.Context, userID, deviceID string, until time.Time) (Device, error) {
	var v sql.NullInt64
	if !until.IsZero() {
		v = sql.NullInt64{Int64: ms(until), Valid: true}
	}
	return s.changeDevice(ctx, userID, deviceID, `remembered_until = ?`, v)
}

// InvalidateDevice makes a device count as new on the user's next actions, until a
// challenge succeeds on it, and forgets that it was remembered.
func (s *Store) InvalidateDevice(ctx context.Context, userID, deviceID string) (Device, error) {
	return s.changeDevice(ctx, userID, deviceID, `invalidated_at = ?, remembered_until = NULL`, ms(s.now()))
}
