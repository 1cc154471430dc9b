"""Progressive knowledge distillation into Mamba students."""
