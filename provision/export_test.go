package provision

// Test hooks: the cluster's port picking.
var (
	ClusterPorts = clusterPorts
	EphemeralLow = ephemeralLow
)
