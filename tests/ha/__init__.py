"""Failover and disaster-recovery drills: several real nodes on loopback (`make test-ha`)."""
