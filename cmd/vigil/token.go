package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/cloud/openstack"
	"github.com/vigil-ha/vigil/store"
	storeopen "github.com/vigil-ha/vigil/store/open"
	"github.com/vigil-ha/vigil/store/sqlite"
	"github.com/vigil-ha/vigil/vigil"
)

// tokenCmd is `vigil token create|list|revoke --db STORE`: the API's tokens,
// straight in the store, for whoever can read the store (on the Vigil host: its
// file or its database's password). That is how the first token is made; `vigil
// ctl token` does the same through the API with a token.
func tokenCmd() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens in Vigil's store (run on the Vigil host; `vigil ctl token` goes through the API)",
	}
	cmd.PersistentFlags().StringVar(&db, "db", "vigil.db", "the store of `vigil serve --db`: an SQLite file (Vigil may be running) or a MariaDB/MySQL DSN")
	open := func(ctx context.Context) (store.Tokens, func() error, error) { return openTokens(ctx, db) }
	create := &cobra.Command{
		Use: "create NAME", Short: "Make a token (shown once: keep it)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, closeStore, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeStore()
			ct, err := api.CreateToken(cmd.Context(), ts, args[0], time.Now())
			if err != nil {
				return tokenErr(err, args[0])
			}
			printCreated(cmd.OutOrStdout(), ct)
			return nil
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "The tokens: names, creation, last use, revocation (never the tokens)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, closeStore, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeStore()
			list, err := ts.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			printTokens(cmd.OutOrStdout(), list)
			return nil
		},
	}
	revoke := &cobra.Command{
		Use: "revoke NAME", Short: "Revoke a token: refused from the next request on", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, closeStore, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeStore()
			if err := ts.RevokeToken(cmd.Context(), args[0], time.Now()); err != nil {
				return tokenErr(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// openTokens opens the tokens of the store dsn names. An SQLite file held by a
// live Vigil is opened beside it (sqlite.OpenTokens); one not yet made is refused
// rather than created empty (a mistyped --db would make tokens nobody checks).
func openTokens(ctx context.Context, dsn string) (store.Tokens, func() error, error) {
	scheme, rest, hasScheme := strings.Cut(dsn, "://")
	if hasScheme && (scheme == "mysql" || scheme == "mariadb") {
		s, err := storeopen.Open(ctx, dsn, store.Owner{})
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	path := dsn
	if hasScheme {
		path = rest
	}
	s, err := storeopen.Open(ctx, dsn, store.Owner{})
	if errors.Is(err, store.ErrHeld) {
		return sqlite.OpenTokens(ctx, path)
	}
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

func tokenErr(err error, name string) error {
	switch {
	case errors.Is(err, store.ErrExists):
		return fmt.Errorf("a valid token named %s exists: revoke it first, or choose another name", name)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no valid token named %s (see `token list`)", name)
	}
	return err
}

func printCreated(w io.Writer, ct api.CreatedToken) {
	fmt.Fprintf(w, "token %s created; it is shown only now, keep it (Vigil keeps only its hash):\n%s\n", ct.Name, ct.Token)
}

func printTokens(w io.Writer, list []store.Token) {
	tw := newTable(w)
	fmt.Fprintf(tw, "NAME\tCREATED\tLAST USED\tREVOKED\n")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, when(t.Created), when(t.LastUsed), when(t.Revoked))
	}
	tw.Flush()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// ctlTokenCmd is `vigil ctl token create|list|revoke`, through the API.
func (c *ctl) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens through the API (needs a token: --token or $VIGIL_TOKEN)"}
	create := &cobra.Command{
		Use: "create NAME", Short: "Make a token (shown once: keep it)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ct api.CreatedToken
			if err := c.do(http.MethodPost, "/v1/tokens", map[string]string{"name": args[0]}, &ct); err != nil {
				return err
			}
			return c.print(cmd.OutOrStdout(), ct, func(w io.Writer) { printCreated(w, ct) })
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "The tokens (never the tokens themselves)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []store.Token
			if err := c.do(http.MethodGet, "/v1/tokens", nil, &list); err != nil {
				return err
			}
			return c.print(cmd.OutOrStdout(), list, func(w io.Writer) { printTokens(w, list) })
		},
	}
	revoke := &cobra.Command{
		Use: "revoke NAME", Short: "Revoke a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do(http.MethodDelete, "/v1/tokens/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// keystoneAuth is the Keystone that validates OpenStack tokens on the API when
// the policy file's auth.keystone is on (nil when off), as the watched cloud's user.
func keystoneAuth(ctx context.Context, cfg vigil.Config, cloudName, cloudsFile string) (api.Keystone, error) {
	if !cfg.Auth.Keystone {
		return nil, nil
	}
	k, err := openstack.NewKeystone(ctx, openstack.Config{CloudName: cloudName, CloudsFile: cloudsFile})
	if err != nil {
		return nil, fmt.Errorf("auth.keystone: %w", err)
	}
	return vigil.KeystoneAuth(k), nil
}
