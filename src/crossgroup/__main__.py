from crossgroup.cli.app import main

main()
