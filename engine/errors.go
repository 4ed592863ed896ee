package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Class is the category of an error that decides what the transaction runner does next.
type Class int

// Error classes, from the runner's point of view.
const (
	// ClassNone is no error at all.
	ClassNone Class = iota
	// ClassConflict is a serialization failure (40001) or a deadlock (40P01): the
	// transaction did not commit, and retrying it from BEGIN is the remedy.
	ClassConflict
	// ClassConnection is a lost or unusable connection. Before COMMIT was sent nothing was
	// committed and the transaction can run again; during COMMIT the outcome is unknown.
	ClassConnection
	// ClassCanceled is the run's own context ending.
	ClassCanceled
	// ClassPermanent is every other error: constraint violations, DSQL limits (54000),
	// syntax errors, unsupported features. Retrying cannot help.
	ClassPermanent
)

var classNames = [...]string{"none", "conflict", "connection", "canceled", "permanent"}

// String returns the class name used in reports.
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

// SQLSTATE codes the runner treats specially.
const (
	CodeSerializationFailure = "40001"
	CodeDeadlockDetected     = "40P01"
)

// Classify returns the class of err. It looks for a *pgconn.PgError at any depth of wrapping
// and decides by its SQLSTATE, never by the message.
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case CodeSerializationFailure, CodeDeadlockDetected:
			return ClassConflict
		case "08000", "08003", "08006", "57P01", "57P02", "57P03":
			// Connection exceptions and administrator or crash shutdowns end the session.
			return ClassConnection
		}
		return ClassPermanent
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ClassCanceled
	}
	if isConnectionError(err) {
		return ClassConnection
	}
	return ClassPermanent
}

func isConnectionError(err error) bool {
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return pgconn.SafeToRetry(err) ||
		errors.As(err, &netErr) ||
		errors.As(err, &connectErr) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed)
}

// ConflictLabel returns a short label for a conflict error: the SQLSTATE, followed by
// DSQL's OC000 (data conflict) or OC001 (schema change) when the message carries one. It
// returns "" for an error that is not a conflict.
func ConflictLabel(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || Classify(err) != ClassConflict {
		return ""
	}
	for _, oc := range []string{"OC000", "OC001"} {
		if strings.Contains(pgErr.Message, oc) {
			return pgErr.Code + "/" + oc
		}
	}
	return pgErr.Code
}

// SQLState returns the SQLSTATE of err, or "" when err carries none.
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
