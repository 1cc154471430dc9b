"""Knowledge distillation: the loss registry and the distill stage."""
