"""Code that runs inside the Argilla server's own virtualenv, never in the project's: it imports
``argilla_server``. ``launch.py`` is started as a script, so this folder is its ``sys.path[0]`` and
the other modules here are imported by their bare names; keep their names unlike any installed
package's.
"""
