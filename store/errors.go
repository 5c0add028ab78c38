package store

import "errors"

// Errors returned by Open and Verify.
var (
	// ErrLocked is returned when another process (normally a running
	// gatehouse server) holds the data file's lock for longer than
	// Options.LockTimeout. bbolt allows one writer process per file.
	ErrLocked = errors.New("data file is locked by another gatehouse process")
	// ErrNewerSchema is returned for a data file written by a newer gatehouse
	// whose record layout this binary does not know. Nothing is written to it.
	ErrNewerSchema = errors.New("store schema version is newer than this gatehouse supports")
	// ErrNotStore is returned for a file that is not a gatehouse store: not
	// a bbolt file at all, or a bbolt file without gatehouse metadata.
	ErrNotStore = errors.New("not a gatehouse store")
	// ErrDataPath is returned when the data file's directory is missing or
	// not a directory, or the data file path names a directory.
	ErrDataPath = errors.New("bad data file path")
	// ErrFailed is returned by Update and Batch (and DB.Err) after a commit
	// failed with an I/O error once part of it had reached the file: what is
	// on disk is then unknown, and only a restart, which reads the file
	// back, can tell. Serving on from memory would risk diverging from it.
	ErrFailed = errors.New("store failed")
	// ErrCorrupt is returned when a stored record or index cannot be read
	// back, or when Verify finds an inconsistency.
	ErrCorrupt = errors.New("store is corrupt")
)

// Errors returned by Tx methods.
var (
	// ErrNotFound is returned when no record has the requested id, name,
	// client id, kid or digest.
	ErrNotFound = errors.New("not found")
	// ErrNameTaken is returned by PutToken and PutApp when another record of
	// the same kind already has that name.
	ErrNameTaken = errors.New("name is already taken")
	// ErrClientIDTaken is returned by PutToken when another token already has
	// that client id.
	ErrClientIDTaken = errors.New("client id is already taken")
	// ErrAUDTaken is returned by PutApp when another application already has
	// that audience tag: the aud is what a JWT's audience is checked against,
	// so two applications must never share one.
	ErrAUDTaken = errors.New("application audience tag is already taken")
	// ErrDigestTaken is returned by PutAdminKey when another admin key has
	// the same secret digest (the same key added twice).
	ErrDigestTaken = errors.New("admin key digest is already taken")
	// ErrInUse is for a record that others still refer to. The store itself
	// does not return it (DeleteToken does not look at policies; DeleteApp
	// cascades to the app's policies); the admin layer returns it after
	// checking references in the same transaction.
	ErrInUse = errors.New("record is in use")
	// ErrInvalid is returned when a record lacks a field the store needs to
	// key or index it (an id, a name, a client id, ...). Full validation is
	// the tokens and policy packages' job; this only keeps the indexes sound.
	ErrInvalid = errors.New("invalid record")
)

// detailError is an error whose message is complete on its own but which
// still matches its sentinel with errors.Is: for errors an operator reads
// ("data file /x is locked by another gatehouse process") where appending
// the sentinel's text would only repeat it.
type detailError struct {
	msg      string
	sentinel error
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.sentinel }
