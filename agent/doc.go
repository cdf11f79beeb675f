// Package agent is the host agent (`vigil agent`): one small process per hypervisor
// host that tells Vigil, over every network it is given (management, storage...),
// that the host lives, what its peers hear of each other, what libvirt says of its
// domains (lifecycle events at once, a full listing every few seconds to repair a
// missed event), and how its guests answer their probes (the QEMU guest agent's ping,
// and the application probes Vigil orders).
//
// It never acts on its host or its guests: no start, stop, reboot or fence, ever,
// whatever Vigil answers. It observes and reports; Vigil decides. Every libvirt call
// has a timeout (a frozen libvirtd hangs go-libvirt's calls), and one dead path or one
// hung guest delays nothing else: each path and each probe runs on its own.
package agent
