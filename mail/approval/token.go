package approval

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Token errors. ErrExpired is only returned for a token whose MAC is
// valid, so a forged token never reads as merely expired.
var (
	ErrBadToken = errors.New("invalid approval token")
	ErrExpired  = errors.New("approval token expired")
)

// TokenPrefix starts every token, so that our Message-IDs can be told from
// other IDs in a References field without checking a MAC. The "1" is the
// token format version.
const TokenPrefix = "ar1-"

const (
	tokenMACSize   = 16 // 128-bit truncated HMAC-SHA256
	tokenNonceSize = 6  // makes two summaries with the same plan and expiry differ
	tokenDomain    = "abuse-responder approval token v1\x00"
	keySize        = 32
)

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Signer makes and checks the token carried in a summary's Message-ID. The
// token binds the case, the exact plan (its hash) and an expiry, so that a
// reply approves only what the admins were shown, and only for a while.
// A Signer is safe for concurrent use.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer for key, which should be the 32 random bytes
// from LoadOrCreateKey. The key is copied.
func NewSigner(key []byte) *Signer {
	return &Signer{key: bytes.Clone(key)}
}

// Token returns a token for the case and plan that is valid until expires.
// It uses only lower-case letters, digits and '-', so it is safe as a
// Message-ID local part. Each call gives a different token (a random
// nonce), so a reminder never reuses the Message-ID of the first summary.
func (s *Signer) Token(caseID, planHash string, expires time.Time) string {
	var p []byte
	p = binary.BigEndian.AppendUint64(p, uint64(expires.Unix()))
	nonce := make([]byte, tokenNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		panic("approval: crypto/rand failed: " + err.Error()) // never on Linux
	}
	p = append(p, nonce...)
	p = binary.AppendUvarint(p, uint64(len(caseID)))
	p = append(p, caseID...)
	// A hex plan hash (the usual SHA-256) is stored as bytes: it halves the
	// token, which some mail clients copy into References many times over.
	if b, err := hex.DecodeString(planHash); err == nil && planHash == strings.ToLower(planHash) && len(b) > 0 {
		p = append(p, 1)
		p = binary.AppendUvarint(p, uint64(len(b)))
		p = append(p, b...)
	} else {
		p = append(p, 0)
		p = binary.AppendUvarint(p, uint64(len(planHash)))
		p = append(p, planHash...)
	}
	p = append(p, s.mac(p)...)
	return TokenPrefix + strings.ToLower(tokenEncoding.EncodeToString(p))
}

// Verify checks token's MAC and expiry at now and returns what it binds.
// The daemon must still check that planHash is the case's current plan and
// that the case has not been answered already.
func (s *Signer) Verify(token string, now time.Time) (caseID, planHash string, err error) {
	if len(token) < len(TokenPrefix) || !strings.EqualFold(token[:len(TokenPrefix)], TokenPrefix) || len(token) > 1024 {
		return "", "", fmt.Errorf("%w: not one of our tokens", ErrBadToken)
	}
	enc := strings.ToUpper(token[len(TokenPrefix):])
	p, err := tokenEncoding.DecodeString(enc)
	if err != nil || len(p) < 8+tokenNonceSize+3+tokenMACSize {
		return "", "", fmt.Errorf("%w: malformed", ErrBadToken)
	}
	// The last base32 character carries unused bits that the decoder
	// ignores: accept only the one canonical spelling of a token, so that a
	// changed character is always a different, refused token.
	if tokenEncoding.EncodeToString(p) != enc {
		return "", "", fmt.Errorf("%w: not canonical", ErrBadToken)
	}
	body, mac := p[:len(p)-tokenMACSize], p[len(p)-tokenMACSize:]
	if !hmac.Equal(mac, s.mac(body)) {
		return "", "", fmt.Errorf("%w: signature does not match", ErrBadToken)
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(body)), 0)
	r := body[8+tokenNonceSize:]
	caseBytes, r, ok := tokenField(r)
	if !ok || len(r) < 1 {
		return "", "", fmt.Errorf("%w: malformed", ErrBadToken)
	}
	kind := r[0]
	plan, r, ok := tokenField(r[1:])
	if !ok || len(r) != 0 || kind > 1 {
		return "", "", fmt.Errorf("%w: malformed", ErrBadToken)
	}
	planHash = string(plan)
	if kind == 1 {
		planHash = hex.EncodeToString(plan)
	}
	if now.After(expires) {
		return "", "", fmt.Errorf("%w at %s (case %s)", ErrExpired, expires.UTC().Format(time.RFC3339), caseBytes)
	}
	return string(caseBytes), planHash, nil
}

// tokenField reads one length-prefixed field.
func tokenField(r []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(r)
	if k <= 0 || n > uint64(len(r)-k) {
		return nil, nil, false
	}
	return r[k : k+int(n)], r[k+int(n):], true
}

func (s *Signer) mac(p []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tokenDomain))
	m.Write(p)
	return m.Sum(nil)[:tokenMACSize]
}

// LoadOrCreateKey reads the HMAC key at path, or creates it with 32 random
// bytes (mode 0600, parent directory 0700) on first start. The key is never
// rewritten: a new key would invalidate every summary in flight. A key file
// that anyone on the machine can read is refused, since its holder could
// forge approvals.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate approval key: %w", err)
	}
	// Write a temporary file and link it into place: the key appears whole
	// or not at all, and a key created meanwhile by another process wins.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".approval-key-*")
	if err != nil {
		return nil, fmt.Errorf("create approval key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create approval key: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write approval key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write approval key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write approval key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("install approval key: %w", err)
	}
	return key, nil
}

// readKey reads an existing key and checks its size and mode.
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open approval key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open approval key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("approval key %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("approval key %s is accessible to every user (mode %04o): chmod 600 it", path, st.Mode().Perm())
	}
	key, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, fmt.Errorf("read approval key: %w", err)
	}
	if len(key) < keySize || len(key) > 4096 {
		return nil, fmt.Errorf("approval key %s holds %d bytes, want %d to 4096", path, len(key), keySize)
	}
	return key, nil
}
