"""crossgroup.privacy"""
