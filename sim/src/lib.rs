//! Cluster simulator on turmoil: filled by the simulator issue.
