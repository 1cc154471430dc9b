"""N2N: reinforcement-learned layer removal and shrinkage (Ashok et al. 2018), with network
surgery."""

# The zoo first: it registers this package's n2n-child architecture, which reads the modules
# here, so importing any of them alone must not start that cycle halfway.
import compress.models  # noqa: F401
