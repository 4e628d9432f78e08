"""Physics: readers, charges, histograms and fits. Arrays and files in, numbers out; no service code."""
