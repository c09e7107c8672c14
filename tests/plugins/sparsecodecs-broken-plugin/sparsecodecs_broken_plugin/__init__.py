"""Test-only codec plugins for sparsecodecs' registry isolation tests: one valid codec whose id
has a hyphen, and entry points that fail to import or name broken classes. Importing this
package does nothing; each entry point names its own submodule."""
