"""The billing source contract (tables finsync reads) and a deterministic demo data generator."""
