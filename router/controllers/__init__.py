"""HTTP controllers: validate and translate, nothing else."""
