"""Cells and boxes are provisioned by the operator, not over HTTP."""
import os
import re

from .tree import Tree

CELL_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}$")
BOX_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
DEFAULT_CELL, DEFAULT_BOX = "cell1", "box1"


def create_box(data_root, cell, box):
    """Make the data root, the cell and the box as needed; True if the box is new."""
    if not CELL_NAME.match(cell):
        raise ValueError("invalid cell name %r" % cell)
    if not BOX_NAME.match(box) or box.startswith("__"):
        # "__token", "__role", "__ctl"...: names the server's own URLs use
        raise ValueError("invalid box name %r (names starting with __ are reserved)" % box
                         if box.startswith("__") else "invalid box name %r" % box)
    tree = Tree(data_root)
    tree.make_dirs()
    os.makedirs(os.path.join(tree.root, cell), exist_ok=True)
    path = tree.box_dir(cell, box)
    if os.path.isdir(path):
        return False
    os.rename(tree.build_collection("box"), path)
    return True


def is_provisioned(data_root):
    """True when the data root holds at least one box."""
    root = os.path.abspath(data_root)
    if not os.path.isdir(root):
        return False
    for cell in os.listdir(root):
        if CELL_NAME.match(cell) and os.path.isdir(os.path.join(root, cell)):
            if any(BOX_NAME.match(b) for b in os.listdir(os.path.join(root, cell))):
                return True
    return False
