package agent

import (
	"context"
	"encoding/json"
	"net"
	"time"
)

// peerMsg is the datagram agents send each other: small, one per peer per interval.
type peerMsg struct {
	Host string `json:"host"`
	Boot string `json:"boot"`
	Seq  uint64 `json:"seq"`
}

// peers sends to each configured peer every interval and, if conn listens on a
// known address, records when each was last heard. Datagrams from hosts that are not
// configured peers are ignored: a peer's word counts only for the hosts it was told.
func (a *agent) peers(ctx context.Context, conn net.PacketConn) {
	known := map[string]bool{}
	for _, p := range a.cfg.Peers {
		known[p.Name] = true
	}
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	go func() {
		buf := make([]byte, 1024)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				continue
			}
			var m peerMsg
			if json.Unmarshal(buf[:n], &m) != nil || !known[m.Host] {
				continue
			}
			a.st.heardPeer(m.Host, time.Now())
		}
	}()
	if len(a.cfg.Peers) == 0 {
		<-ctx.Done()
		return
	}
	var seq uint64
	for {
		seq++
		msg, _ := json.Marshal(peerMsg{Host: a.cfg.Host, Boot: a.boot, Seq: seq})
		for _, p := range a.cfg.Peers {
			// Resolved each time: a peer's address may move, and a failed send
			// (unreachable now) is simply what the peer will not hear.
			if addr, err := net.ResolveUDPAddr("udp", p.Addr); err == nil {
				_, _ = conn.WriteTo(msg, addr)
			}
		}
		t := time.NewTimer(a.st.beatInterval())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
