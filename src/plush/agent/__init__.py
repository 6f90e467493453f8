"""The agent (the paper's client): joins a controller, receives the model, installs software, walks its
component block's DAG, runs processes and reports. Standard library only, Python 3.8 syntax.
"""
