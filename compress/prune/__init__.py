"""N2N: reinforcement-learned layer removal and shrinkage (Ashok et al. 2018), with network
surgery."""
