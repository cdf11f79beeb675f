package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// authFlags are ctl's credentials: the API token and the CA that signed a Vigil
// serving HTTPS with a certificate the system does not trust.
func (c *ctl) authFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.token, "token", "", "API token ($VIGIL_TOKEN; `vigil token create` makes one); its value is never printed")
	cmd.PersistentFlags().StringVar(&c.cacert, "cacert", os.Getenv("VIGIL_CACERT"), "PEM file of the CA that signed Vigil's certificate, for https:// ($VIGIL_CACERT)")
}

// prepare adds ctl's token to req and returns the client to send it with (one
// trusting --cacert, if given).
func (c *ctl) prepare(req *http.Request) (*http.Client, error) {
	tok := c.token
	if tok == "" {
		tok = os.Getenv("VIGIL_TOKEN")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if c.cacert == "" {
		return c.client, nil
	}
	pem, err := os.ReadFile(c.cacert)
	if err != nil {
		return nil, fmt.Errorf("--cacert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", c.cacert)
	}
	client := *c.client
	client.Transport = &http.Transport{Proxy: http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &client, nil
}

// authHint tells a user refused by the API what to give.
func (c *ctl) authHint(code int) string {
	switch code {
	case http.StatusUnauthorized:
		if c.token == "" && os.Getenv("VIGIL_TOKEN") == "" {
			return " (give --token or set VIGIL_TOKEN; `vigil token create NAME --db STORE` on the Vigil host makes one)"
		}
		return " (the token given by --token or VIGIL_TOKEN was refused)"
	case http.StatusForbidden:
		return " (the token is valid but lacks the right)"
	}
	return ""
}
