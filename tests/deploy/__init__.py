"""The deployment artefacts: the Helm chart and the container image."""
