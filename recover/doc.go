// Package recover is the durable executor. It takes the steps that plan decided,
// journals each one's intent in the store before acting, carries it out through the
// compute and fence drivers, and journals the outcome after. After a restart it
// resumes steps left in flight by asking the cloud what happened before repeating
// anything: idempotent by checking, not by hoping.
//
// It never decides what to do next (that is plan's job) and never writes without
// the owner's epoch.
package recover
