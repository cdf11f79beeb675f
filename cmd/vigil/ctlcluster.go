package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/model"
)

// clusterSource holds create-cluster's source flags: at most one of them.
type clusterSource struct {
	stack, serverGroup, metadata string
}

func (s *clusterSource) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.stack, "stack", "", "protect every server of this Heat stack (name or ID); members follow the stack")
	cmd.Flags().StringVar(&s.serverGroup, "server-group", "", "protect the members of this Nova server group (ID or name)")
	cmd.Flags().StringVar(&s.metadata, "metadata", "", "protect the servers whose metadata has "+model.MetaCluster+"=VALUE")
}

// apply puts the source, if one was given, into a create request's body.
func (s *clusterSource) apply(body map[string]any) error {
	var kind, ref string
	n := 0
	for _, f := range []struct{ kind, ref string }{
		{model.SourceHeatStack, s.stack}, {model.SourceServerGroup, s.serverGroup}, {model.SourceMetadata, s.metadata},
	} {
		if f.ref != "" {
			kind, ref = f.kind, f.ref
			n++
		}
	}
	switch {
	case n > 1:
		return fmt.Errorf("give one of --stack, --server-group, --metadata, not several")
	case n == 1 && body["members"] != nil && len(body["members"].([]string)) > 0:
		return fmt.Errorf("--members and --%s exclude each other: the members are read from the %s", flagOf(kind), kind)
	case n == 1:
		body["source"] = map[string]string{"kind": kind, "ref": ref}
		delete(body, "members")
	}
	return nil
}

func flagOf(kind string) string {
	if kind == model.SourceHeatStack {
		return "stack"
	}
	return kind
}

// clusterCmd is `vigil ctl cluster add|remove NAME SERVER...`.
func (c *ctl) clusterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Edit a cluster's members"}
	edit := func(verb, key string) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " NAME SERVER...",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " servers (IDs) of a cluster that lists its members",
			Long: "A cluster defined by a Heat stack, a server group or metadata follows its source and refuses edits:\n" +
				"change the stack, the group or the metadata instead.",
			Args: cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				var out model.ClusterStatus
				if err := c.do(http.MethodPatch, "/v1/clusters/"+seg(args[0]), map[string][]string{key: args[1:]}, &out); err != nil {
					return err
				}
				return c.print(cmd.OutOrStdout(), out, func(w io.Writer) {
					fmt.Fprintf(w, "cluster %s: %d members %v, desired %d, health %s\n", out.Name, len(out.Members), out.Members, out.Desired, out.Health)
				})
			},
		}
	}
	cmd.AddCommand(edit("add", "add"), edit("remove", "remove"))
	return cmd
}
