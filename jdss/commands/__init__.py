"""The cliff commands of jdss, one module per resource."""
