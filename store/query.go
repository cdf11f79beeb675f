package store

import (
	"strings"

	"github.com/vigil-ha/vigil/model"
)

// IncidentQuery selects a page of incidents, newest (highest ID) first. Every
// filter is applied by the store before the limit, so a page holds Limit matching
// incidents whenever that many exist.
type IncidentQuery struct {
	// Limit is the most incidents returned (at least 1).
	Limit int
	// Before, when non-zero, keeps incidents with an ID below it: the marker of the
	// previous page (its last incident's ID).
	Before int64
	// States keeps incidents in any of these states; empty keeps all.
	States []model.IncidentState
	// Cluster keeps incidents of this cluster; "" keeps all.
	Cluster string
	// Host keeps incidents about this host: its own, those with a step acting on it
	// (fence, mark-down, evacuation off it), and those of the servers in Servers.
	Host string
	// Servers are the servers on Host (the caller knows the placement; the store
	// does not): their incidents are kept too. Used only with Host.
	Servers []string
}

// IncidentWhere is the WHERE ... ORDER BY ... LIMIT clause of q over the incidents
// and steps tables both SQL stores share, with its arguments (? placeholders).
func IncidentWhere(q IncidentQuery) (string, []any) {
	var conds []string
	var args []any
	if q.Before > 0 {
		conds = append(conds, "id < ?")
		args = append(args, q.Before)
	}
	if len(q.States) > 0 {
		conds = append(conds, "state IN ("+marks(len(q.States))+")")
		for _, s := range q.States {
			args = append(args, string(s))
		}
	}
	if q.Cluster != "" {
		conds = append(conds, "cluster = ?")
		args = append(args, q.Cluster)
	}
	if q.Host != "" {
		about := []string{"(kind = ? AND subject = ?)", "id IN (SELECT incident FROM steps WHERE host = ?)"}
		args = append(args, model.KindHost, q.Host, q.Host)
		if len(q.Servers) > 0 {
			about = append(about, "(kind = ? AND subject IN ("+marks(len(q.Servers))+"))")
			args = append(args, model.KindServer)
			for _, s := range q.Servers {
				args = append(args, s)
			}
		}
		conds = append(conds, "("+strings.Join(about, " OR ")+")")
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ") + " "
	}
	return where + "ORDER BY id DESC LIMIT ?", append(args, max(q.Limit, 1))
}

func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
