package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// sdNotify tells systemd (a unit of Type=notify) the service's state, such as
// "READY=1" once the API listens. Without $NOTIFY_SOCKET (not run by systemd, or
// not Type=notify) it does nothing. An abstract socket is named with a leading @.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", state, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return nil
}
