package tokens

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// t0 is the fixed clock of these tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func digestOf(s string) *[32]byte {
	d := Digest(s)
	return &d
}

func mustNew(t *testing.T, d Duration) (*ServiceToken, string) {
	t.Helper()
	tok, secret, err := New("ci-deploy", d, t0)
	if err != nil {
		t.Fatal(err)
	}
	return tok, secret
}

func TestNew(t *testing.T) {
	tok, secret := mustNew(t, DefaultDuration)
	if err := CheckSecret(secret, SecretPrefix, false); err != nil {
		t.Fatalf("New returned a malformed secret: %v", err)
	}
	d := Digest(secret)
	switch {
	case !ValidID(tok.ID):
		t.Errorf("ID %q is not a UUID", tok.ID)
	case !ValidClientID(tok.ClientID):
		t.Errorf("ClientID %q is malformed", tok.ClientID)
	case tok.Name != "ci-deploy":
		t.Errorf("Name = %q", tok.Name)
	case !bytes.Equal(tok.SecretDigest, d[:]):
		t.Error("SecretDigest is not Digest(secret)")
	case tok.SecretVersion != 1 || !tok.Enabled || tok.Imported:
		t.Errorf("version %d, enabled %v, imported %v", tok.SecretVersion, tok.Enabled, tok.Imported)
	case !tok.CreatedAt.Equal(t0) || !tok.UpdatedAt.Equal(t0):
		t.Errorf("CreatedAt %v UpdatedAt %v", tok.CreatedAt, tok.UpdatedAt)
	case !tok.ExpiresAt.Equal(t0.Add(8760 * time.Hour)):
		t.Errorf("ExpiresAt = %v, want a year after creation", tok.ExpiresAt)
	case tok.PreviousSecretDigest != nil || !tok.PreviousSecretExpiresAt.IsZero():
		t.Error("a new token has a previous secret")
	}
	if got := tok.Verify(&d, t0); got != VerifyOK {
		t.Errorf("Verify(right secret) = %v", got)
	}
	// The record never holds the secret.
	b, _ := json.Marshal(tok)
	if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(secret[len(SecretPrefix):])) {
		t.Error("the JSON record contains the secret")
	}
	other, _ := mustNew(t, DefaultDuration)
	if other.ID == tok.ID || other.ClientID == tok.ClientID {
		t.Error("two tokens share an id or client id")
	}
}

func TestNewErrors(t *testing.T) {
	if _, _, err := New("", DefaultDuration, t0); !errors.Is(err, ErrNameEmpty) {
		t.Errorf("New(empty name) = %v", err)
	}
	if _, _, err := New("bad\nname", DefaultDuration, t0); !errors.Is(err, ErrNameNotPrintable) {
		t.Errorf("New(bad name) = %v", err)
	}
	if _, _, err := New("x", Duration(-time.Hour), t0); !errors.Is(err, ErrDurationNotPos) {
		t.Errorf("New(negative duration) = %v", err)
	}
}

func TestExpiryBoundary(t *testing.T) {
	tok, secret := mustNew(t, Duration(24*time.Hour))
	end := t0.Add(24 * time.Hour)
	right, wrong := digestOf(secret), digestOf(secret+"x")
	tests := []struct {
		now     time.Time
		d       *[32]byte
		expired bool
		want    VerifyResult
	}{
		{t0, right, false, VerifyOK},
		{end.Add(-time.Nanosecond), right, false, VerifyOK},
		{end, right, true, VerifyExpired},
		{end.Add(time.Hour), right, true, VerifyExpired},
		{end, wrong, true, VerifyWrongSecret}, // a wrong secret learns nothing
		{t0, wrong, false, VerifyWrongSecret},
	}
	for _, tt := range tests {
		if got := tok.Expired(tt.now); got != tt.expired {
			t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.expired)
		}
		if got := tok.Verify(tt.d, tt.now); got != tt.want {
			t.Errorf("Verify at %v = %v, want %v", tt.now, got, tt.want)
		}
	}
}

func TestForever(t *testing.T) {
	tok, secret := mustNew(t, Forever)
	if !tok.ExpiresAt.IsZero() {
		t.Fatalf("ExpiresAt = %v, want zero", tok.ExpiresAt)
	}
	far := t0.AddDate(200, 0, 0)
	if tok.Expired(far) || tok.Verify(digestOf(secret), far) != VerifyOK {
		t.Error("a forever token expired")
	}
	tok.Refresh(far)
	if !tok.ExpiresAt.IsZero() {
		t.Error("Refresh gave a forever token an expiry")
	}
}

func TestRefresh(t *testing.T) {
	tok, secret := mustNew(t, Duration(24*time.Hour))
	later := t0.Add(23 * time.Hour)
	digest := bytes.Clone(tok.SecretDigest)
	tok.Refresh(later)
	if !tok.ExpiresAt.Equal(later.Add(24*time.Hour)) || !tok.UpdatedAt.Equal(later) {
		t.Errorf("after Refresh: ExpiresAt %v UpdatedAt %v", tok.ExpiresAt, tok.UpdatedAt)
	}
	if !bytes.Equal(tok.SecretDigest, digest) || tok.SecretVersion != 1 {
		t.Error("Refresh changed the secret")
	}
	if got := tok.Verify(digestOf(secret), t0.Add(30*time.Hour)); got != VerifyOK {
		t.Errorf("Verify after the old expiry = %v, want ok", got)
	}
	// Refreshing an expired token revives it.
	tok.Refresh(t0.Add(100 * time.Hour))
	if tok.Expired(t0.Add(100 * time.Hour)) {
		t.Error("Refresh did not revive an expired token")
	}
}

func TestSetDuration(t *testing.T) {
	tok, _ := mustNew(t, DefaultDuration)
	now := t0.Add(time.Hour)
	tok.SetDuration(Duration(2*time.Hour), now)
	if tok.Duration != Duration(2*time.Hour) || !tok.ExpiresAt.Equal(now.Add(2*time.Hour)) || !tok.UpdatedAt.Equal(now) {
		t.Errorf("SetDuration(2h): Duration %v ExpiresAt %v", tok.Duration, tok.ExpiresAt)
	}
	tok.SetDuration(Forever, now)
	if tok.Duration != Forever || !tok.ExpiresAt.IsZero() {
		t.Errorf("SetDuration(forever): Duration %v ExpiresAt %v", tok.Duration, tok.ExpiresAt)
	}
}

func TestRotateNoGrace(t *testing.T) {
	tok, old := mustNew(t, DefaultDuration)
	now := t0.Add(time.Hour)
	secret, err := tok.Rotate(0, now)
	if err != nil {
		t.Fatal(err)
	}
	if secret == old || CheckSecret(secret, SecretPrefix, false) != nil {
		t.Fatal("Rotate returned a bad secret")
	}
	if tok.SecretVersion != 2 || !tok.UpdatedAt.Equal(now) || tok.PreviousSecretDigest != nil || !tok.PreviousSecretExpiresAt.IsZero() {
		t.Errorf("after Rotate(0): version %d, previous %x until %v", tok.SecretVersion, tok.PreviousSecretDigest, tok.PreviousSecretExpiresAt)
	}
	if got := tok.Verify(digestOf(old), now); got != VerifyWrongSecret {
		t.Errorf("old secret right after Rotate(0) = %v", got)
	}
	if got := tok.Verify(digestOf(secret), now); got != VerifyOK {
		t.Errorf("new secret = %v", got)
	}
	if !tok.ExpiresAt.Equal(t0.Add(8760 * time.Hour)) {
		t.Error("Rotate changed the expiry")
	}
}

func TestRotateGrace(t *testing.T) {
	tok, old := mustNew(t, DefaultDuration)
	now := t0.Add(time.Hour)
	secret, err := tok.Rotate(time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if !tok.PreviousSecretExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("PreviousSecretExpiresAt = %v", tok.PreviousSecretExpiresAt)
	}
	tests := []struct {
		secret string
		at     time.Duration // after now
		want   VerifyResult
	}{
		{old, 0, VerifyOKPrevious},
		{old, 59*time.Minute + 59*time.Second, VerifyOKPrevious},
		{old, time.Hour - time.Nanosecond, VerifyOKPrevious},
		{old, time.Hour, VerifyWrongSecret},
		{old, 2 * time.Hour, VerifyWrongSecret},
		{secret, 0, VerifyOK},
		{secret, 2 * time.Hour, VerifyOK},
		{old + "x", 0, VerifyWrongSecret},
	}
	for _, tt := range tests {
		if got := tok.Verify(digestOf(tt.secret), now.Add(tt.at)); got != tt.want {
			t.Errorf("Verify(%s secret) at now+%v = %v, want %v", map[bool]string{true: "old", false: "new"}[tt.secret == old], tt.at, got, tt.want)
		}
	}
	// The previous secret on an expired token reports expired, not ok.
	tok.ExpiresAt = now.Add(time.Minute)
	if got := tok.Verify(digestOf(old), now.Add(30*time.Minute)); got != VerifyExpired {
		t.Errorf("previous secret on an expired token = %v", got)
	}
}

func TestRotateTwiceDropsOldest(t *testing.T) {
	tok, first := mustNew(t, DefaultDuration)
	second, err := tok.Rotate(MaxGrace, t0)
	if err != nil {
		t.Fatal(err)
	}
	third, err := tok.Rotate(MinGrace, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(2 * time.Minute)
	if tok.SecretVersion != 3 {
		t.Errorf("SecretVersion = %d, want 3", tok.SecretVersion)
	}
	if got := tok.Verify(digestOf(first), at); got != VerifyWrongSecret {
		t.Errorf("first secret = %v, want wrong_secret", got)
	}
	if got := tok.Verify(digestOf(second), at); got != VerifyOKPrevious {
		t.Errorf("second secret = %v, want ok_previous_secret", got)
	}
	if got := tok.Verify(digestOf(third), at); got != VerifyOK {
		t.Errorf("third secret = %v, want ok", got)
	}
}

func TestRotateGraceRange(t *testing.T) {
	for _, g := range []time.Duration{time.Nanosecond, 59 * time.Minute, MaxGrace + time.Second, -time.Hour, 10000 * time.Hour} {
		tok, _ := mustNew(t, DefaultDuration)
		before := tok.Clone()
		if _, err := tok.Rotate(g, t0.Add(time.Hour)); !errors.Is(err, ErrGraceRange) {
			t.Errorf("Rotate(%v) = %v, want ErrGraceRange", g, err)
		}
		if !reflect.DeepEqual(tok, before) {
			t.Errorf("a refused Rotate(%v) changed the token", g)
		}
	}
	for _, g := range []time.Duration{MinGrace, MaxGrace, 24 * time.Hour} {
		tok, _ := mustNew(t, DefaultDuration)
		if _, err := tok.Rotate(g, t0); err != nil {
			t.Errorf("Rotate(%v) = %v", g, err)
		}
	}
}

func TestSetEnabled(t *testing.T) {
	tok, old := mustNew(t, DefaultDuration)
	secret, err := tok.Rotate(24*time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Verify(digestOf(old), t0.Add(time.Hour)); got != VerifyOKPrevious {
		t.Fatalf("grace secret before disabling = %v", got)
	}

	tok.SetEnabled(false, t0.Add(time.Hour))
	if tok.Enabled || !tok.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Error("SetEnabled(false) did not disable")
	}
	if tok.PreviousSecretDigest != nil || !tok.PreviousSecretExpiresAt.IsZero() {
		t.Error("disabling kept the grace secret")
	}
	at := t0.Add(2 * time.Hour)
	if got := tok.Verify(digestOf(secret), at); got != VerifyDisabled {
		t.Errorf("current secret on a disabled token = %v", got)
	}
	if got := tok.Verify(digestOf(old), at); got != VerifyWrongSecret {
		t.Errorf("grace secret on a disabled token = %v", got)
	}
	// Disabled wins over expired.
	if got := tok.Verify(digestOf(secret), t0.AddDate(2, 0, 0)); got != VerifyDisabled {
		t.Errorf("current secret on a disabled, expired token = %v", got)
	}
	// Rotating a disabled token keeps no grace secret.
	third, err := tok.Rotate(24*time.Hour, at)
	if err != nil {
		t.Fatal(err)
	}
	if tok.PreviousSecretDigest != nil {
		t.Error("rotating a disabled token kept a grace secret")
	}

	tok.SetEnabled(true, at)
	if got := tok.Verify(digestOf(third), at); got != VerifyOK {
		t.Errorf("current secret after enabling = %v", got)
	}
	for _, s := range []string{old, secret} {
		if got := tok.Verify(digestOf(s), at); got != VerifyWrongSecret {
			t.Errorf("a replaced secret after enabling = %v", got)
		}
	}
}

func TestImport(t *testing.T) {
	const clientID = "88bf3b6d86161464f6509f7219099e57.access"
	hexSecret := "bdd31cbc4dec990953e39163fbbb194c93313ca9f0a6e420346af9d326b1d2a5"
	ghst, _ := NewSecret(SecretPrefix)
	for _, secret := range []string{hexSecret, strings.ToUpper(hexSecret), ghst} {
		tok, err := Import("from-cloudflare", clientID, secret, DefaultDuration, t0)
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		if !tok.Imported || tok.ClientID != clientID || !tok.Enabled || tok.SecretVersion != 1 || !ValidID(tok.ID) {
			t.Errorf("Import gave %+v", tok)
		}
		if got := tok.Verify(digestOf(secret), t0); got != VerifyOK {
			t.Errorf("imported secret = %v", got)
		}
		if got := tok.Verify(digestOf(secret+"0"), t0); got != VerifyWrongSecret {
			t.Errorf("another secret = %v", got)
		}
	}
	admin, _ := NewSecret(AdminKeyPrefix)
	tests := []struct {
		name, clientID, secret string
		want                   error
	}{
		{"", clientID, hexSecret, ErrNameEmpty},
		{"x", "88BF3B6D86161464F6509F7219099E57.access", hexSecret, ErrClientIDMalformed},
		{"x", "88bf3b6d86161464f6509f7219099e57", hexSecret, ErrClientIDMalformed},
		{"x", clientID, hexSecret[:63], ErrSecretMalformed},
		{"x", clientID, admin, ErrSecretMalformed},
		{"x", clientID, ghst[:53] + "!", ErrSecretMalformed},
		{"x", clientID, "", ErrSecretMalformed},
	}
	for _, tt := range tests {
		if _, err := Import(tt.name, tt.clientID, tt.secret, DefaultDuration, t0); !errors.Is(err, tt.want) {
			t.Errorf("Import(%q, %q, ...) = %v, want %v", tt.name, tt.clientID, err, tt.want)
		}
	}
}

func TestVerifyEdgeCases(t *testing.T) {
	tok, _ := mustNew(t, DefaultDuration)
	if got := tok.Verify(nil, t0); got != VerifyWrongSecret {
		t.Errorf("Verify(nil) = %v", got)
	}
	if got := tok.Verify(&DummyDigest, t0); got != VerifyWrongSecret {
		t.Errorf("Verify(DummyDigest) = %v", got)
	}
	// A damaged record with no digest matches nothing, not even zeros.
	empty := &ServiceToken{Enabled: true}
	var zero [32]byte
	if got := empty.Verify(&zero, t0); got != VerifyWrongSecret {
		t.Errorf("Verify on a token without digest = %v", got)
	}
	// A previous digest with no expiry is never accepted.
	tok2, secret := mustNew(t, DefaultDuration)
	tok2.PreviousSecretDigest = tok2.SecretDigest
	tok2.SecretDigest = bytes.Repeat([]byte{1}, 32)
	if got := tok2.Verify(digestOf(secret), t0); got != VerifyWrongSecret {
		t.Errorf("previous secret without an expiry = %v", got)
	}
}

func TestVerifyDoesNotAllocate(t *testing.T) {
	tok, secret := mustNew(t, DefaultDuration)
	d := Digest(secret)
	if n := testing.AllocsPerRun(100, func() { _ = tok.Verify(&d, t0) }); n != 0 {
		t.Errorf("Verify allocates %v times", n)
	}
}

// TestTokenRecordRoundTrip checks that a token survives the store's JSON
// encoding mid-grace, and that Clone is deep.
func TestTokenRecordRoundTrip(t *testing.T) {
	tok, old := mustNew(t, Duration(48*time.Hour))
	secret, _ := tok.Rotate(2*time.Hour, t0)
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var back ServiceToken
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	if back.Verify(digestOf(secret), at) != VerifyOK || back.Verify(digestOf(old), at) != VerifyOKPrevious {
		t.Error("the decoded record does not verify like the original")
	}
	if back.Duration != tok.Duration || !back.ExpiresAt.Equal(tok.ExpiresAt) || back.SecretVersion != 2 {
		t.Errorf("decoded record differs: %+v", back)
	}
	c := tok.Clone()
	c.SecretDigest[0] ^= 1
	c.PreviousSecretDigest[0] ^= 1
	if tok.Verify(digestOf(secret), at) != VerifyOK || tok.Verify(digestOf(old), at) != VerifyOKPrevious {
		t.Error("changing a clone changed the original")
	}
}

func TestVerifyResultString(t *testing.T) {
	want := map[VerifyResult]string{
		VerifyOK:          "ok",
		VerifyOKPrevious:  "ok_previous_secret",
		VerifyWrongSecret: "wrong_secret",
		VerifyExpired:     "expired",
		VerifyDisabled:    "disabled",
		VerifyResult(99):  "VerifyResult(99)",
	}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), s)
		}
	}
	for r, ok := range map[VerifyResult]bool{VerifyOK: true, VerifyOKPrevious: true, VerifyWrongSecret: false, VerifyExpired: false, VerifyDisabled: false} {
		if r.OK() != ok {
			t.Errorf("%v.OK() = %v", r, r.OK())
		}
	}
	var zero VerifyResult
	if zero.OK() {
		t.Error("the zero VerifyResult is a success")
	}
}
