package model

import (
	"fmt"
	"strconv"
)

// MaxNameLen is the longest name (cluster, policy) Vigil accepts.
const MaxNameLen = 64

// NameRule says in words what CheckName accepts.
const NameRule = "1 to 64 characters, each a letter A-Z or a-z, a digit, '.', '_' or '-'"

// CheckName checks a name an operator gives (a cluster's, a policy's) against
// [A-Za-z0-9._-]{1,64}: it travels in URL paths, log lines and terminal tables,
// where a slash, a '?', a newline or an escape sequence would route elsewhere or
// repaint the screen. "." and ".." are refused too: a URL path cleans them away.
func CheckName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("must not be empty: want %s", NameRule)
	case len(s) > MaxNameLen:
		return fmt.Errorf("is %d bytes long: want %s", len(s), NameRule)
	case s == "." || s == "..":
		return fmt.Errorf("%q is a path step, not a name: want %s", s, NameRule)
	}
	for i, r := range s {
		if r >= 0x80 || !nameByte(byte(r)) {
			return fmt.Errorf("%s has %s at byte %d: want %s", strconv.QuoteToASCII(s), strconv.QuoteRuneToASCII(r), i, NameRule)
		}
	}
	return nil
}

func nameByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-'
}
